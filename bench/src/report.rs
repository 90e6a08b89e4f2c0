//! The benchmark's results: markdown tables (also read on the terminal) and JSON reports,
//! ratios against their targets, and a description of the machine.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

use serde::{Serialize, Serializer};
use xtask::process;

use crate::load::Measurement;
use crate::procstat::Cores;

/// One scenario's measurement with the resources used meanwhile.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub m: Measurement,
    pub cores: Cores,
    /// The service's peak RSS during the scenario, MiB.
    pub peak_rss_mib: Option<f64>,
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

/// A figure with `decimals` decimals, or `–` when it was not measured.
pub fn opt(value: Option<f64>, decimals: usize) -> String {
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
            opt(r.cores.service, 2),
            opt(r.cores.db, 2),
            opt(r.cores.generator, 2),
            opt(r.cores.other, 2),
            opt(r.per_request_us(r.cores.service), 1),
            opt(r.per_request_us(r.cores.db), 1),
            opt(r.per_request_us(r.cores.store), 1),
            opt(r.peak_rss_mib, 1),
        );
    }
    let disturbed: Vec<&str> = rows
        .iter()
        .filter(|r| r.cores.other.is_some_and(|c| c > DISTURBED_CORES))
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

/// `value` rounded to `decimals` decimals, as the markdown shows it (JSON has no NaN).
pub fn round(value: Option<f64>, decimals: i32) -> Option<f64> {
    let scale = 10f64.powi(decimals);
    value
        .filter(|v| v.is_finite())
        .map(|v| (v * scale).round() / scale)
}

/// `(name, value)` pairs as a JSON object, in their order.
struct Pairs<'a>(&'a [(&'a str, String)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// A JSON report: when, on what machine, with which parameters, then the command's results.
#[derive(Serialize)]
pub struct Json<'a, T: Serialize> {
    generated_at: &'a str,
    machine: Pairs<'a>,
    parameters: Pairs<'a>,
    #[serde(flatten)]
    results: T,
}

impl<'a, T: Serialize> Json<'a, T> {
    pub fn new(
        generated_at: &'a str,
        machine: &'a [(&'a str, String)],
        parameters: &'a [(&'a str, String)],
        results: T,
    ) -> Self {
        Self {
            generated_at,
            machine: Pairs(machine),
            parameters: Pairs(parameters),
            results,
        }
    }
}

/// A scenario in the JSON reports.
#[derive(Serialize)]
pub struct RowJson<'a> {
    id: &'a str,
    name: &'a str,
    requests: u64,
    seconds: Option<f64>,
    requests_per_second: Option<f64>,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    non_2xx: u64,
    socket_errors: u64,
    service_cpu_cores: Option<f64>,
    postgres_cpu_cores: Option<f64>,
    load_generator_cpu_cores: Option<f64>,
    other_cpu_cores: Option<f64>,
    machine_cpu_cores: Option<f64>,
    service_cpu_us_per_request: Option<f64>,
    postgres_cpu_us_per_request: Option<f64>,
    store_cpu_us_per_request: Option<f64>,
    service_peak_rss_mib: Option<f64>,
}

impl Row {
    pub fn json(&self) -> RowJson<'_> {
        let r4 = |v: f64| round(Some(v), 4);
        RowJson {
            id: &self.id,
            name: &self.name,
            requests: self.m.requests,
            seconds: r4(self.m.seconds),
            requests_per_second: r4(self.m.per_second),
            p50_ms: r4(self.m.p50_ms),
            p90_ms: r4(self.m.p90_ms),
            p99_ms: r4(self.m.p99_ms),
            max_ms: r4(self.m.max_ms),
            non_2xx: self.m.http_errors,
            socket_errors: self.m.other_errors,
            service_cpu_cores: round(self.cores.service, 4),
            postgres_cpu_cores: round(self.cores.db, 4),
            load_generator_cpu_cores: round(self.cores.generator, 4),
            other_cpu_cores: round(self.cores.other, 4),
            machine_cpu_cores: round(self.cores.machine, 4),
            service_cpu_us_per_request: round(self.per_request_us(self.cores.service), 4),
            postgres_cpu_us_per_request: round(self.per_request_us(self.cores.db), 4),
            store_cpu_us_per_request: round(self.per_request_us(self.cores.store), 4),
            service_peak_rss_mib: round(self.peak_rss_mib, 4),
        }
    }
}

/// A ratio in the JSON report.
#[derive(Serialize)]
pub struct RatioJson<'a> {
    name: &'a str,
    value: Option<f64>,
    target: Option<f64>,
    met: Option<bool>,
    min: Option<f64>,
    max: Option<f64>,
}

impl Ratio {
    pub fn json(&self) -> RatioJson<'_> {
        RatioJson {
            name: self.name,
            value: round(self.value, 4),
            target: round(self.target, 4),
            met: self.met(),
            min: round(self.range.map(|(lo, _)| lo), 4),
            max: round(self.range.map(|(_, hi)| hi), 4),
        }
    }
}

/// A report's title, the command and time that made it, and the machine and parameters as a
/// list.
pub fn header(
    title: &str,
    command: &str,
    generated: &str,
    machine: &[(&str, String)],
    params: &[(&str, String)],
) -> String {
    let mut md = format!("# {title}\n\nGenerated by `{command}` on {generated}.\n\n");
    for (k, v) in machine.iter().chain(params) {
        let _ = writeln!(md, "- {k}: {v}");
    }
    md
}

/// Writes `<name>.md` and `<name>.json` to `out` and prints the markdown.
pub fn publish(
    out: &Path,
    name: &str,
    md: &str,
    json: &impl Serialize,
) -> Result<ExitCode, String> {
    let json = serde_json::to_string_pretty(json).map_err(|e| format!("rendering JSON: {e}"))?;
    let md_path = out.join(format!("{name}.md"));
    let json_path = out.join(format!("{name}.json"));
    write(&md_path, md)?;
    write(&json_path, &(json + "\n"))?;
    println!("\n{md}");
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The current UTC time, for the reports.
pub fn now_utc() -> String {
    process::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))
        .unwrap_or_else(|_| "unknown".to_owned())
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
