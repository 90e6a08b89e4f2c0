//! The benchmark's results: a table on the terminal, `report.md` and `report.json` (written
//! by hand), ratios against their targets, and a description
//! of the machine.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::load::Measurement;
use crate::process;

/// One scenario's measurement with the resources used meanwhile.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub m: Measurement,
    /// Average cores used by the service, PostgreSQL, the load generator (wrk or pgbench),
    /// everything else (machine minus those three: other processes, kernel threads), and the
    /// whole machine.
    pub service_cores: Option<f64>,
    pub db_cores: Option<f64>,
    pub generator_cores: Option<f64>,
    pub other_cores: Option<f64>,
    pub machine_cores: Option<f64>,
    /// The service's peak RSS during the scenario, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Average cores used by the rate-limit store (scenarios that use one).
    pub store_cores: Option<f64>,
}

/// A ratio of two scenarios' throughputs and its target.
pub struct Ratio {
    pub name: &'static str,
    pub value: Option<f64>,
    /// `None`: reported, no target.
    pub target: Option<f64>,
    /// Lowest and highest value over the rounds, when there were several.
    pub range: Option<(f64, f64)>,
}

impl Ratio {
    pub fn met(&self) -> Option<bool> {
        Some(self.value? >= self.target?)
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The scenarios as a markdown table (also readable on a terminal).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| | scenario | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | \
         CPU service | CPU PostgreSQL | CPU load gen. | CPU other | \
         service µs CPU/req | PostgreSQL µs CPU/req | store µs CPU/req | service peak RSS MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.name,
            r.m.per_second,
            r.m.p50_ms,
            r.m.p99_ms,
            r.m.max_ms,
            r.m.http_errors,
            r.m.other_errors,
            opt(r.service_cores, 2),
            opt(r.db_cores, 2),
            opt(r.generator_cores, 2),
            opt(r.other_cores, 2),
            opt(r.per_request_us(r.service_cores), 1),
            opt(r.per_request_us(r.db_cores), 1),
            opt(r.per_request_us(r.store_cores), 1),
            opt(r.peak_rss_mib, 1),
        );
    }
    let disturbed: Vec<&str> = rows
        .iter()
        .filter(|r| r.other_cores.is_some_and(|c| c > DISTURBED_CORES))
        .map(|r| r.id.as_str())
        .collect();
    if !disturbed.is_empty() {
        let _ = writeln!(
            out,
            "\n**Disturbed**: other processes used more than {DISTURBED_CORES} cores during {}; \
             those rows understate what this machine can do.",
            disturbed.join(", ")
        );
    }
    out
}

/// "CPU other" above this (cores) marks a measurement as disturbed by other processes.
const DISTURBED_CORES: f64 = 0.25;

impl Row {
    /// Microseconds of CPU per request (or transaction) for a consumer using `cores`.
    pub fn per_request_us(&self, cores: Option<f64>) -> Option<f64> {
        let cores = cores?;
        (self.m.per_second > 0.0 && cores > 0.0).then(|| cores / self.m.per_second * 1e6)
    }
}

/// The ratios as a markdown table.
pub fn ratio_table(ratios: &[Ratio]) -> String {
    let mut out = String::from(
        "| ratio | value | target | met | range over rounds |\n|---|---:|---:|---|---|\n",
    );
    for r in ratios {
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            r.name,
            opt(r.value, 2),
            r.target
                .map_or_else(|| "–".to_owned(), |t| format!("≥ {t:.2}")),
        );
    }
    out
}

/// Throughput of `a` over `b`, by scenario id.
pub fn ratio(rows: &[Row], a: &str, b: &str) -> Option<f64> {
    let get = |id: &str| rows.iter().find(|r| r.id == id).map(|r| r.m.per_second);
    let (a, b) = (get(a)?, get(b)?);
    (b > 0.0).then(|| a / b)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "null".to_owned(),
    }
}

pub fn row_json(r: &Row) -> String {
    format!(
        "{{\"id\": {}, \"name\": {}, \"requests\": {}, \"seconds\": {}, \"requests_per_second\": {}, \
         \"p50_ms\": {}, \"p90_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}, \"non_2xx\": {}, \
         \"socket_errors\": {}, \"service_cpu_cores\": {}, \"postgres_cpu_cores\": {}, \
         \"load_generator_cpu_cores\": {}, \"other_cpu_cores\": {}, \"machine_cpu_cores\": {}, \
         \"service_cpu_us_per_request\": {}, \"postgres_cpu_us_per_request\": {}, \
         \"store_cpu_us_per_request\": {}, \"service_peak_rss_mib\": {}}}",
        json_str(&r.id),
        json_str(&r.name),
        r.m.requests,
        json_num(Some(r.m.seconds)),
        json_num(Some(r.m.per_second)),
        json_num(Some(r.m.p50_ms)),
        json_num(Some(r.m.p90_ms)),
        json_num(Some(r.m.p99_ms)),
        json_num(Some(r.m.max_ms)),
        r.m.http_errors,
        r.m.other_errors,
        json_num(r.service_cores),
        json_num(r.db_cores),
        json_num(r.generator_cores),
        json_num(r.other_cores),
        json_num(r.machine_cores),
        json_num(r.per_request_us(r.service_cores)),
        json_num(r.per_request_us(r.db_cores)),
        json_num(r.per_request_us(r.store_cores)),
        json_num(r.peak_rss_mib),
    )
}

pub fn ratio_json(r: &Ratio) -> String {
    format!(
        "{{\"name\": {}, \"value\": {}, \"target\": {}, \"met\": {}, \"min\": {}, \"max\": {}}}",
        json_str(r.name),
        json_num(r.value),
        json_num(r.target),
        r.met().map_or("null".to_owned(), |m| m.to_string()),
        json_num(r.range.map(|(lo, _)| lo)),
        json_num(r.range.map(|(_, hi)| hi)),
    )
}

/// CPU model, cores, memory, kernel, and the PostgreSQL and wrk versions.
pub fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{:.1} GiB", kib / 1048576.0),
        );
    let cmd = |program: &str, args: &[&str]| {
        process::output(Command::new(program).args(args))
            .ok()
            .and_then(|o| o.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned())
    };
    vec![
        ("cpu", model),
        (
            "cores",
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .to_string(),
        ),
        ("memory", mem),
        ("kernel", cmd("uname", &["-sr"])),
        (
            "load average before the scenarios (1/5/15 min)",
            fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        ),
        ("rustc", cmd("rustc", &["--version"])),
    ]
}

pub fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
