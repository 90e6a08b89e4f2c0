//! Load generators: wrk with `bench/scripts/load.lua` (HTTP scenarios) and pgbench (the
//! database's ceiling), and the parsing of what they print into one `Measurement`.

use std::env;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use xtask::process;

use crate::database::bench_dir;
use crate::procstat;

pub const WRK_HINT: &str =
    "wrk not found on PATH: install wrk: apt-get install wrk (Debian/Ubuntu) or brew install wrk";

/// Throughput, latency and errors of one run of a load generator.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    pub requests: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Responses with a status ≥ 400 (wrk), or failed transactions (pgbench).
    pub http_errors: u64,
    /// Socket errors and timeouts (wrk), aborted clients (pgbench).
    pub other_errors: u64,
    /// 429 answers, when the script counts them apart from `http_errors` (abuse.lua).
    pub refused: u64,
    /// Answers ≥ 400 per status, when the script lists them (abuse.lua).
    pub statuses: Vec<(u16, u64)>,
    /// CPU seconds the load generator itself used.
    pub generator_cpu: Option<f64>,
}

/// Runs `cmd` to completion like `process::output`, and also returns the CPU seconds it used
/// (sampled from `/proc` until it exits: a zombie still reports its totals).
pub fn output_with_cpu(cmd: &mut Command) -> Result<(String, Option<f64>), String> {
    let shown = process::display(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    let pid = child.id();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let mut cpu = None;
    let status = loop {
        if let Some(seconds) = procstat::process_cpu(pid) {
            cpu = Some(seconds);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for `{shown}`: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        Ok((stdout, cpu))
    } else {
        Err(format!("`{shown}` failed ({status}):\n{stdout}{stderr}"))
    }
}

/// The `wrk` executable on PATH.
pub fn find_wrk() -> Result<PathBuf, String> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .map(|dir| dir.join("wrk"))
        .find(|exe| exe.is_file())
        .ok_or_else(|| WRK_HINT.to_owned())
}

pub struct WrkRun<'a> {
    pub wrk: &'a Path,
    /// A script of `bench/scripts`.
    pub script: &'a str,
    pub url: &'a str,
    pub mode: &'a str,
    pub tokens: Option<&'a Path>,
    /// A request body file, for scripts that take one (after the tokens and threads).
    pub body: Option<&'a Path>,
    pub threads: usize,
    pub connections: usize,
    pub seconds: u64,
    pub timeout_seconds: u64,
}

impl WrkRun<'_> {
    pub fn run(&self) -> Result<Measurement, String> {
        let mut cmd = Command::new(self.wrk);
        cmd.args(["-t", &self.threads.to_string()])
            .args(["-c", &self.connections.max(self.threads).to_string()])
            .args(["-d", &format!("{}s", self.seconds)])
            .args(["--timeout", &format!("{}s", self.timeout_seconds)])
            .arg("-s")
            .arg(bench_dir()?.join(self.script))
            .arg(self.url)
            .args(["--", self.mode]);
        if let Some(tokens) = self.tokens {
            cmd.arg(tokens).arg(self.threads.to_string());
        }
        if let Some(body) = self.body {
            cmd.arg(body);
        }
        eprintln!("$ {}", process::display(&cmd));
        let (out, cpu) = output_with_cpu(&mut cmd)?;
        let mut m = parse_wrk(&out)?;
        m.generator_cpu = cpu;
        Ok(m)
    }
}

/// Reads the `BENCH key=value ...` line that `load.lua`'s `done()` prints.
fn parse_wrk(out: &str) -> Result<Measurement, String> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .ok_or_else(|| format!("wrk printed no BENCH line:\n{out}"))?;
    let get = |name: &str| -> Result<f64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in wrk's BENCH line: {line}"))
    };
    let seconds = get("duration_us")? / 1e6;
    let requests = get("requests")?;
    Ok(Measurement {
        requests: requests as u64,
        seconds,
        per_second: requests / seconds.max(1e-9),
        p50_ms: get("p50_us")? / 1e3,
        p90_ms: get("p90_us")? / 1e3,
        p99_ms: get("p99_us")? / 1e3,
        max_ms: get("max_us")? / 1e3,
        http_errors: get("http_errors")? as u64,
        other_errors: (get("connect_errors")?
            + get("read_errors")?
            + get("write_errors")?
            + get("timeouts")?) as u64,
        refused: get("refused").unwrap_or(0.0) as u64,
        statuses: statuses(line),
        generator_cpu: None,
    })
}

/// `statuses=503:12,429:3` of a BENCH line (empty when absent or empty).
fn statuses(line: &str) -> Vec<(u16, u64)> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("statuses="))
        .unwrap_or("")
        .split(',')
        .filter_map(|pair| {
            let (status, count) = pair.split_once(':')?;
            Some((status.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// Reads pgbench's summary and its per-transaction logs `<dir>/<prefix>.*` (deleted after).
pub fn parse_pgbench(out: &str, dir: &Path, prefix: &str) -> Result<Measurement, String> {
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let tps = field("tps = ").ok_or_else(|| format!("pgbench printed no tps:\n{out}"))?;
    let processed = field("number of transactions actually processed:").unwrap_or(0.0);
    let failed = field("number of failed transactions:").unwrap_or(0.0);
    let duration = field("duration:").unwrap_or(0.0);

    let mut latencies_us: Vec<u64> = Vec::new();
    let mut unparsable = 0u64;
    let entries = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.starts_with(&format!("{prefix}.")))
        {
            continue;
        }
        let text = fs::read_to_string(entry.path())
            .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
        // client_id transaction_no time script_no time_epoch time_us [...]
        for line in text.lines() {
            match line.split_whitespace().nth(2).map(str::parse::<u64>) {
                Some(Ok(us)) => latencies_us.push(us),
                _ => unparsable += 1,
            }
        }
        let _ = fs::remove_file(entry.path());
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((latencies_us.len() as f64 * p / 100.0).ceil() as usize)
            .clamp(1, latencies_us.len())
            - 1;
        latencies_us[index] as f64 / 1e3
    };
    Ok(Measurement {
        requests: processed as u64,
        seconds: duration,
        per_second: tps,
        p50_ms: pct(50.0),
        p90_ms: pct(90.0),
        p99_ms: pct(99.0),
        max_ms: pct(100.0),
        http_errors: failed as u64 + unparsable,
        other_errors: 0,
        refused: 0,
        statuses: Vec::new(),
        generator_cpu: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bench_line() {
        let out = "Running 10s test\nBENCH requests=1000 duration_us=2000000 bytes=1 \
                   http_errors=3 connect_errors=1 read_errors=0 write_errors=0 timeouts=2 \
                   p50_us=1500 p90_us=2500 p99_us=9000 p999_us=12000 max_us=15000 mean_us=1.0\n";
        let m = parse_wrk(out).unwrap();
        assert_eq!(m.requests, 1000);
        assert!((m.per_second - 500.0).abs() < 1e-9);
        assert!((m.p99_ms - 9.0).abs() < 1e-9);
        assert_eq!((m.http_errors, m.other_errors), (3, 3));
        assert_eq!(m.refused, 0);
    }

    #[test]
    fn reads_the_refusals_of_the_abuse_script() {
        let out = "BENCH requests=10 duration_us=1000000 bytes=1 http_errors=1 refused=7 \
                   connect_errors=0 read_errors=0 write_errors=0 timeouts=0 p50_us=1 p90_us=1 \
                   p99_us=1 p999_us=1 max_us=1 mean_us=1.0 statuses=429:7,503:1\n";
        let m = parse_wrk(out).unwrap();
        assert_eq!((m.http_errors, m.refused), (1, 7));
        assert_eq!(m.statuses, [(429, 7), (503, 1)]);
    }

    #[test]
    fn reads_pgbench_summary_and_logs() {
        let dir = env::temp_dir().join(format!("bench-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log: String = (1..=100)
            .map(|i| format!("0 {i} {} 0 1700000000 0\n", i * 10))
            .collect();
        fs::write(dir.join("p1.123"), log).unwrap();
        fs::write(dir.join("p1.123.1"), "1 1 failed 0 1700000000 0\n").unwrap();
        let out = "duration: 10 s\nnumber of transactions actually processed: 101\n\
                   number of failed transactions: 0 (0.000%)\n\
                   tps = 10.1 (without initial connection time)\n";
        let m = parse_pgbench(out, &dir, "p1").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(m.requests, 101);
        assert!((m.per_second - 10.1).abs() < 1e-9);
        assert!((m.p50_ms - 0.5).abs() < 1e-9);
        assert!((m.p99_ms - 0.99).abs() < 1e-9);
        assert_eq!(m.http_errors, 1);
    }
}
