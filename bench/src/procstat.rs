//! CPU time and memory of processes from Linux's `/proc`: the service's CPU and peak RSS, the
//! PostgreSQL server's CPU (postmaster and backends), and the machine's busy time.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

use xtask::process;

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`, 100 on every mainstream Linux).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        process::output(Command::new("getconf").arg("CLK_TCK"))
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces):
/// index 0 is the state (field 3 of proc(5)).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // The state is a letter: keep its slot so that indices match proc(5) minus 3.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime (+ cutime + cstime: time of reaped children) of one process, in seconds.
fn cpu_seconds(pid: u32, with_children: bool) -> Option<f64> {
    let f = stat_fields(pid)?;
    // proc(5): utime 14, stime 15, cutime 16, cstime 17 → indices 11..=14.
    let mut ticks = f.get(11)? + f.get(12)?;
    if with_children {
        ticks += f.get(13)? + f.get(14)?;
    }
    Some(ticks as f64 / ticks_per_second())
}

/// CPU seconds used so far by the process `pid`, or `None` if it does not exist.
pub fn process_cpu(pid: u32) -> Option<f64> {
    cpu_seconds(pid, false)
}

/// CPU seconds of a PostgreSQL server: the postmaster, its reaped children (backends that
/// exited, e.g. pgbench's) and its live children (backends, background workers).
pub fn server_cpu(postmaster: u32) -> Option<f64> {
    let mut total = cpu_seconds(postmaster, true)?;
    for pid in children_of(postmaster) {
        total += cpu_seconds(pid, true).unwrap_or(0.0);
    }
    Some(total)
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        // proc(5): ppid is field 4 → index 1.
        .filter(|pid| stat_fields(*pid).and_then(|f| f.get(1).copied()) == Some(u64::from(parent)))
        .collect()
}

/// Busy CPU seconds of the whole machine (all cores; idle and iowait excluded).
pub fn machine_busy() -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user/nice).
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy as f64 / ticks_per_second())
}

/// Peak resident set size of `pid` in MiB (`VmHWM`) since start or the last reset.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// Resident set size of `pid` now, in MiB (`VmRSS`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak RSS of `pid` to its current RSS (Linux ≥ 4.0; a no-op elsewhere).
pub fn reset_peak_rss(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Counters sampled before and after a measurement.
#[derive(Clone, Copy)]
pub struct Sample {
    at: std::time::Instant,
    service: Option<f64>,
    server: Option<f64>,
    machine: Option<f64>,
}

impl Sample {
    pub fn take(service: Option<u32>, postmaster: Option<u32>) -> Self {
        Self {
            at: std::time::Instant::now(),
            service: service.and_then(process_cpu),
            server: postmaster.and_then(server_cpu),
            machine: machine_busy(),
        }
    }

    /// Wall-clock seconds from `self` to `later`.
    pub fn seconds_until(&self, later: &Sample) -> f64 {
        later.at.duration_since(self.at).as_secs_f64().max(1e-9)
    }

    /// Average cores used from `self` to `later`, given the CPU seconds that the load
    /// generator and the rate-limit store used meanwhile.
    pub fn cores_until(
        &self,
        later: &Sample,
        generator_cpu: Option<f64>,
        store_cpu: Option<f64>,
    ) -> Cores {
        let wall = self.seconds_until(later);
        let rate = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0) / wall);
        let service = rate(self.service, later.service);
        let db = rate(self.server, later.server);
        let machine = rate(self.machine, later.machine);
        let generator = generator_cpu.map(|cpu| cpu / wall);
        let store = store_cpu.map(|cpu| cpu.max(0.0) / wall);
        let known: f64 = [service, db, generator, store].iter().flatten().sum();
        Cores {
            service,
            db,
            generator,
            store,
            other: machine.map(|machine| machine - known),
            machine,
        }
    }
}

/// Average cores used during a measurement, by consumer.
#[derive(Clone, Copy, Debug)]
pub struct Cores {
    pub service: Option<f64>,
    /// PostgreSQL: the postmaster and its backends.
    pub db: Option<f64>,
    /// The load generator (wrk or pgbench).
    pub generator: Option<f64>,
    /// The rate-limit store, in the scenarios that use one.
    pub store: Option<f64>,
    /// The machine minus the above: other processes, kernel threads.
    pub other: Option<f64>,
    pub machine: Option<f64>,
}

/// Cores the machine used over `window` (all processes).
pub fn machine_cores_over(window: std::time::Duration) -> Option<f64> {
    let start = machine_busy()?;
    std::thread::sleep(window);
    Some((machine_busy()? - start) / window.as_secs_f64())
}
