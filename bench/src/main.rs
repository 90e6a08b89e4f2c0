//! `cargo xtask bench`: the service side by side with the limits of the machine it runs on
//! (method and latest results in docs/BENCHMARKS.md).
//!
//! Builds the release binary, seeds a database (its own throw-away cluster unless
//! `DATABASE_URL` is set), starts the service with production-like configuration and drives it
//! with wrk, scenario after scenario at the same concurrency; then runs pgbench with the
//! service's own SQL. Writes `target/bench/report.{md,json}`. `scale` checks that latency stays
//! flat as the data grows; `abuse` what one user's flood of maximum-size bulk writes does to
//! the service's memory and to everyone else's reads.

mod abuse;
mod database;
mod defaults;
mod events;
mod load;
mod procstat;
mod report;
mod rewrap;
mod scale;
mod service;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use database::{Database, PgbenchOptions};
use load::{Measurement, WrkRun};
use procstat::Sample;
use report::{Ratio, Row, opt};
use serde::Serialize;
use service::Service;
use xtask::redis_server::RedisServer;
use xtask::{dev_secrets, process, workspace};

/// Settings seeded per user (19 plain JSON + 1 encrypted); the scripts under bench/scripts agree.
pub const SETTINGS_PER_USER: u64 = 20;

/// Lifetime of the minted tokens: longer than any run.
const TOKEN_TTL: &str = "6h";

/// Per-user rate limits "out of the way" (the defaults are 1000 reads / 100 writes per hour).
const NO_RATE_LIMIT: &str = "1000000000";

/// The service's benchmark: wrk scenarios A-G and pgbench P1-P3 with ratios; writes
/// target/bench/report.{md,json}. Counts take `_`, `k` and `m` (`100k`); durations `10`, `10s`
/// or `2m`.
#[derive(Parser)]
#[command(bin_name = "cargo xtask bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Benchmark>,
    #[command(flatten)]
    options: Options,
}

#[derive(Subcommand)]
enum Benchmark {
    /// p99 of one-setting and list reads at --small vs --large users, and lists of
    /// 10/100/1000 settings; writes target/bench/scale.{md,json}.
    Scale(scale::Options),
    /// Readers' p50/p99 alone, then while one user keeps --abusers largest bulk writes in
    /// flight; the service's peak RSS; writes target/bench/abuse.{md,json}.
    Abuse(abuse::Options),
    /// How long a deployment default change takes to be served by a second instance, and the
    /// users' rows it writes; writes target/bench/defaults.{md,json}.
    Defaults(defaults::Options),
    /// Delivery latency of the live change stream (streams on instance B, writes through A)
    /// and memory per idle stream; writes target/bench/events.{md,json}.
    Events(events::Options),
    /// `keys rewrap` of --secrets encrypted settings (1M) while the service serves: rows/s,
    /// and C's p99 during the rewrap against its p99 without it; writes
    /// target/bench/rewrap.{md,json}.
    Rewrap(rewrap::Options),
}

/// The options of the main benchmark.
#[derive(Args, Clone, Copy, Debug)]
pub struct Options {
    /// Seeded users.
    #[arg(long, default_value = "100000", value_parser = count::<u64>)]
    users: u64,
    /// Measured time per scenario, after a 1-2 s warm-up.
    #[arg(long = "duration", default_value = "10", value_parser = seconds)]
    seconds: u64,
    /// wrk connections and pgbench clients.
    #[arg(long, default_value = "32", value_parser = count::<usize>)]
    connections: usize,
    /// Users the load generators rotate over (a sample spread over all users).
    #[arg(long, default_value = "10000", value_parser = count::<u64>)]
    tokens: u64,
    /// Rounds of all scenarios; the report shows each scenario's median round.
    #[arg(long, default_value = "1", value_parser = count::<u64>)]
    repeat: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Benchmark::Scale(options)) => scale::run(&options),
        Some(Benchmark::Abuse(options)) => abuse::run(&options),
        Some(Benchmark::Defaults(options)) => defaults::run(&options),
        Some(Benchmark::Events(options)) => events::run(&options),
        Some(Benchmark::Rewrap(options)) => rewrap::run(&options),
        None => main_benchmark(&cli.options),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    })
}

/// A count of at least 1: digits, optionally with `_` separators or a `k`/`m` suffix.
pub(crate) fn count<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let lower = text.replace('_', "").to_ascii_lowercase();
    let (digits, factor) = match (lower.strip_suffix('k'), lower.strip_suffix('m')) {
        (Some(d), _) => (d, 1_000),
        (_, Some(d)) => (d, 1_000_000),
        _ => (lower.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("`{text}`: not a count of at least 1 (such as 1000 or 10k)"))
}

/// Seconds, at least 1: `10`, `10s` or `2m`.
fn seconds(text: &str) -> Result<u64, String> {
    let (digits, factor) = match text.strip_suffix('m') {
        Some(d) => (d, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .map(|n| n * factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}`: not a duration such as 10s or 2m"))
}

/// Everything a run needs: the binary, wrk, the database, secrets and the output directory.
pub struct Bench {
    binary: PathBuf,
    wrk: PathBuf,
    db: Database,
    out: PathBuf,
    jwt_secret: String,
    encryption_key: String,
    kid: String,
    cores: usize,
    connections: usize,
    seconds: u64,
}

impl Bench {
    /// Checks for wrk, builds the release binary, opens the database and migrates it.
    pub fn prepare(connections: usize, seconds: u64) -> Result<Self, String> {
        let wrk = load::find_wrk()?;
        process::run(workspace::cargo()?.args([
            "build",
            "--release",
            "--package",
            "app",
            "--bin",
            "user-settings",
        ]))?;
        let target = workspace::target_dir()?;
        let binary = target.join("release").join("user-settings");
        let out = target.join("bench");
        fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let secrets = dev_secrets::load_or_create()?;
        let kid = secrets
            .encryption_key
            .split_once(':')
            .map(|(kid, _)| kid.to_owned())
            .ok_or("the dev encryption key has no `kid:` prefix")?;
        let bench = Self {
            binary,
            wrk,
            db: Database::open(&out)?,
            out,
            jwt_secret: secrets.jwt_secret,
            encryption_key: secrets.encryption_key,
            kid,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            connections,
            seconds,
        };
        let mut migrate = bench.command();
        migrate.arg("migrate").env("DATABASE_URL", bench.db.url());
        process::output(&mut migrate)?;
        Ok(bench)
    }

    /// The service binary with the benchmark's secrets and quiet logs.
    fn command(&self) -> Command {
        let mut cmd = service::command(&self.binary);
        cmd.env("USER_SETTINGS_ENCRYPTION_KEY", &self.encryption_key)
            .env("USER_SETTINGS_JWT_SECRET", &self.jwt_secret)
            .env("RUST_LOG", "warn")
            // Requests, and waits for a connection, of 100 ms and more leave a line in the
            // service's log: where a scenario's max latency came from.
            .env("USER_SETTINGS_LOG_SLOW_REQUEST", "100ms");
        cmd
    }

    /// Seeds users `first..=last` (and says how long it took); returns the seconds.
    pub fn seed(&self, first: u64, last: u64) -> Result<f64, String> {
        eprintln!(
            "seeding users {first}..={last}: preferences and {SETTINGS_PER_USER} settings each"
        );
        let seconds = self.db.seed_users(first, last, &self.kid)?;
        let rate = (last - first + 1) as f64 / seconds.max(1e-9);
        eprintln!(
            "seeded {} users in {seconds:.1} s ({rate:.0} users/s)",
            last - first + 1
        );
        Ok(seconds)
    }

    /// Starts the service; `cached: false` sets both cache TTLs to 0.
    pub fn start_service(&self, name: &str, cached: bool) -> Result<Service, String> {
        let uncached = [
            ("USER_SETTINGS_CACHE_TTL", "0".to_owned()),
            ("USER_PREFERENCES_CACHE_TTL", "0".to_owned()),
        ];
        self.start_service_with(name, if cached { &[] } else { &uncached })
    }

    /// Starts the service with `extra` variables on top of the benchmark's configuration.
    pub fn start_service_with(
        &self,
        name: &str,
        extra: &[(&str, String)],
    ) -> Result<Service, String> {
        let mut cmd = self.command();
        cmd.env("DATABASE_URL", self.db.url())
            .env("USER_SETTINGS_RATE_LIMIT_READS", NO_RATE_LIMIT)
            .env("USER_SETTINGS_RATE_LIMIT_WRITES", NO_RATE_LIMIT)
            .env("USER_SETTINGS_WORKERS", self.cores.to_string())
            .env("USER_SETTINGS_LOG_FORMAT", "json")
            .envs(extra.iter().map(|(k, v)| (k, v)));
        Service::start(cmd, &self.out.join(format!("service-{name}.log")))
    }

    /// Tokens for `count` users spread evenly over users 1..=`users` (user 1 + i*users/count,
    /// the same sample as the pgbench scripts), one per line in `target/bench/<file>`.
    pub fn mint_tokens(&self, users: u64, count: u64, file: &str) -> Result<PathBuf, String> {
        let ids = self.db.query(&format!(
            "SELECT md5('bench-user-' || (1 + (i * {users}::bigint) / {count}))::uuid \
             FROM generate_series(0, {count} - 1) AS i"
        ))?;
        self.write_tokens(&ids, file)
    }

    /// Tokens for the user ids of `ids` (one a line), one per line in `target/bench/<file>`:
    /// one run of `user-settings token` signs them all.
    pub fn write_tokens(&self, ids: &str, file: &str) -> Result<PathBuf, String> {
        self.write_tokens_with(ids, file, &[])
    }

    /// As [`Self::write_tokens`], the tokens granting `roles`.
    pub fn write_tokens_with(
        &self,
        ids: &str,
        file: &str,
        roles: &[&str],
    ) -> Result<PathBuf, String> {
        let subjects = self.out.join(format!("{file}.subjects"));
        report::write(&subjects, ids)?;
        let mut mint = self.command();
        mint.arg("token")
            .arg("--subjects-file")
            .arg(&subjects)
            .args(["--ttl", TOKEN_TTL]);
        for role in roles {
            mint.args(["--role", role]);
        }
        let tokens = process::output(&mut mint)?;
        let path = self.out.join(file);
        report::write(&path, &(tokens + "\n"))?;
        Ok(path)
    }

    /// Checks that the service accepts the minted tokens and serves what was seeded.
    pub fn preflight(&self, svc: &Service, tokens: &Path) -> Result<(), String> {
        let token = first_token(tokens)?;
        for path in [
            "/api/v1/users/me/preferences",
            "/api/v1/users/me/settings/ui.bench.s01",
            "/api/v1/users/me/settings",
        ] {
            let (status, body) = service::http(svc.addr(), "GET", path, Some(&token), None)?;
            if status != 200 {
                return Err(format!(
                    "pre-flight GET {path} answered {status}, expected 200 \
                     (a 401 means the service does not accept the benchmark's tokens): {body:.400}"
                ));
            }
        }
        Ok(())
    }

    fn wrk<'a>(
        &'a self,
        url: &'a str,
        mode: &'a str,
        tokens: Option<&'a Path>,
        seconds: u64,
    ) -> WrkRun<'a> {
        WrkRun {
            wrk: &self.wrk,
            script: "load.lua",
            url,
            mode,
            tokens,
            body: None,
            threads: self.cores,
            connections: self.connections,
            seconds,
            timeout_seconds: 5,
        }
    }

    /// Runs a wrk scenario: an untimed warm-up, then the measurement with CPU and peak RSS
    /// (and the CPU of the rate-limit store `store`, a pid, when the service uses one).
    pub fn http_scenario(
        &self,
        svc: &Service,
        store: Option<u32>,
        (id, name): (&str, &str),
        mode: &str,
        tokens: Option<&Path>,
    ) -> Result<Row, String> {
        eprintln!("\n== {id}: {name}");
        let url = svc.url();
        let warmup = self.seconds.clamp(1, 2);
        self.wrk(&url, mode, tokens, warmup).run()?;
        let row = self.measure(Some(svc), store, id, name, || {
            self.wrk(&url, mode, tokens, self.seconds).run()
        })?;
        print_row(&row);
        Ok(row)
    }

    /// Fills the preferences cache: every token's user once (at least), walking the tokens.
    pub fn warm_preferences(&self, svc: &Service, tokens: &Path, count: u64) -> Result<(), String> {
        self.warm(svc, tokens, count, "prefs-warm")
    }

    /// Reads through every token once (wrk `mode`, walking the tokens in order), so the
    /// caches hold what the measured scenario reads.
    fn warm(&self, svc: &Service, tokens: &Path, count: u64, mode: &str) -> Result<(), String> {
        eprintln!("\n== warming the caches: {mode} ({count} users)");
        let url = svc.url();
        let start = Instant::now();
        let mut seconds = 2;
        let mut done = 0;
        while done < count && start.elapsed().as_secs() < 120 {
            done += self.wrk(&url, mode, Some(tokens), seconds).run()?.requests;
            seconds *= 2;
        }
        Ok(())
    }

    /// Runs a pgbench script at the HTTP scenarios' concurrency.
    pub fn pgbench_scenario(
        &self,
        (id, name): (&str, &str),
        script: &str,
        users: u64,
        tokens: u64,
    ) -> Result<Row, String> {
        eprintln!("\n== {id}: {name}");
        let opts = PgbenchOptions {
            seconds: self.seconds,
            clients: self.connections,
            threads: self.cores.min(self.connections),
        };
        let vars = [("users", users.to_string()), ("tokens", tokens.to_string())];
        let prefix = format!("pgbench-{id}");
        let row = self.measure(None, None, id, name, || {
            let (out, cpu) = self.db.pgbench(script, &vars, &opts, &self.out, &prefix)?;
            let mut m = load::parse_pgbench(&out, &self.out, &prefix)?;
            m.generator_cpu = cpu;
            Ok(m)
        })?;
        print_row(&row);
        Ok(row)
    }

    /// `run`'s measurement with the CPU used meanwhile by the service, PostgreSQL, the load
    /// generator and the rate-limit store `store` (a pid), and the service's peak RSS.
    fn measure(
        &self,
        svc: Option<&Service>,
        store: Option<u32>,
        id: &str,
        name: &str,
        run: impl FnOnce() -> Result<Measurement, String>,
    ) -> Result<Row, String> {
        wait_for_quiet_machine();
        let pid = svc.map(Service::pid);
        if let Some(pid) = pid {
            procstat::reset_peak_rss(pid);
        }
        let postmaster = self.db.postmaster_pid();
        let store_before = store.and_then(procstat::process_cpu);
        let before = Sample::take(pid, postmaster);
        let m = run()?;
        let after = Sample::take(pid, postmaster);
        let store_cpu = store
            .and_then(procstat::process_cpu)
            .zip(store_before)
            .map(|(after, before)| after - before);
        Ok(Row {
            id: id.to_owned(),
            name: name.to_owned(),
            cores: before.cores_until(&after, m.generator_cpu, store_cpu),
            m,
            peak_rss_mib: pid.and_then(procstat::peak_rss_mib),
        })
    }

    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The run's parameters, for the reports.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let wrk_version = Command::new(&self.wrk)
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines()
                    .next()
                    .map(|l| l.split(" Copyright").next().unwrap_or(l).to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        vec![
            (
                "PostgreSQL",
                self.db
                    .query("SHOW server_version")
                    .unwrap_or_else(|_| "unknown".to_owned()),
            ),
            ("wrk", wrk_version),
            (
                "duration per scenario",
                format!("{} s (after a 1-2 s warm-up)", self.seconds),
            ),
            (
                "connections (wrk) / clients (pgbench)",
                self.connections.to_string(),
            ),
            (
                "wrk threads / pgbench threads",
                self.cores.min(self.connections).to_string(),
            ),
            ("service workers", self.cores.to_string()),
        ]
    }
}

/// The first token of a file of tokens.
pub(crate) fn first_token(tokens: &Path) -> Result<String, String> {
    let text =
        fs::read_to_string(tokens).map_err(|e| format!("reading {}: {e}", tokens.display()))?;
    text.lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("no tokens were minted into {}", tokens.display()))
}

/// Cores that other processes may use before a measurement without it being postponed.
const QUIET_CORES: f64 = 0.25;

/// Other processes (a build, a test run) distort every number: before a measurement, waits up
/// to a minute for the machine to be idle (the service and PostgreSQL are idle between
/// scenarios), then measures anyway; the report's "CPU other" column shows any interference.
fn wait_for_quiet_machine() {
    let start = Instant::now();
    let mut warned = false;
    while let Some(busy) = procstat::machine_cores_over(std::time::Duration::from_secs(1)) {
        if busy <= QUIET_CORES {
            return;
        }
        if start.elapsed().as_secs() >= 60 {
            eprintln!("   the machine is still busy ({busy:.2} cores); measuring anyway");
            return;
        }
        if !warned {
            eprintln!(
                "   other processes use {busy:.2} cores; waiting up to 60 s for the machine to be idle"
            );
            warned = true;
        }
    }
}

fn print_row(row: &Row) {
    eprintln!(
        "   {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} non-2xx, {} socket errors; CPU: service {}, \
         PostgreSQL {}, load generator {}, other {}, machine {}; service peak RSS {} MiB",
        row.m.per_second,
        row.m.p50_ms,
        row.m.p99_ms,
        row.m.http_errors,
        row.m.other_errors,
        opt(row.cores.service, 2),
        opt(row.cores.db, 2),
        opt(row.cores.generator, 2),
        opt(row.cores.other, 2),
        opt(row.cores.machine, 2),
        opt(row.peak_rss_mib, 2),
    );
}

/// What `report.json` holds besides the run's description.
#[derive(Serialize)]
struct Results<'a> {
    scenarios: Vec<report::RowJson<'a>>,
    ratios: Vec<report::RatioJson<'a>>,
    non_2xx_total: u64,
    service_peak_rss_mib: Option<f64>,
    startup_ms: StartupMs,
}

/// Exec to the first `/health/ready` 200 on the benchmark's populated, migrated database, over
/// [`STARTUPS`] starts.
#[derive(Serialize)]
struct StartupMs {
    median: f64,
    max: f64,
}

/// Starts measured for the start-up time.
const STARTUPS: usize = 5;

/// Starts and stops the service [`STARTUPS`] times: the median and the slowest time from exec
/// to ready, in milliseconds.
fn measure_startup(bench: &Bench) -> Result<StartupMs, String> {
    let mut times = Vec::with_capacity(STARTUPS);
    for _ in 0..STARTUPS {
        let service = bench.start_service("startup", true)?;
        times.push(service.ready_after().as_secs_f64() * 1e3);
        service.stop();
    }
    times.sort_by(f64::total_cmp);
    Ok(StartupMs {
        median: times[STARTUPS / 2],
        max: times[STARTUPS - 1],
    })
}

fn main_benchmark(opts: &Options) -> Result<ExitCode, String> {
    let tokens_sampled = opts.tokens.min(opts.users);
    let bench = Bench::prepare(opts.connections, opts.seconds)?;
    let seed_seconds = bench.seed(1, opts.users)?;
    bench.db().settle()?;
    let machine = report::machine();
    let tokens = bench.mint_tokens(opts.users, tokens_sampled, "tokens.txt")?;
    let startup = measure_startup(&bench)?;

    let mut rounds = Vec::new();
    for round in 1..=opts.repeat {
        if opts.repeat > 1 {
            eprintln!("\n=== round {round} of {}", opts.repeat);
        }
        rounds.push(run_round(&bench, opts, tokens_sampled, &tokens)?);
    }
    let rows = median_rows(&rounds);

    let ratios = ratios(&rows, &rounds);
    let http_rows = || rows.iter().filter(|r| !r.id.starts_with('P'));
    let non_2xx: u64 = http_rows()
        .map(|r| r.m.http_errors + r.m.other_errors)
        .sum();
    let peak_rss = http_rows()
        .filter_map(|r| r.peak_rss_mib)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        });

    let mut params = vec![
        (
            "users",
            format!(
                "{} (each: preferences + {SETTINGS_PER_USER} settings, one encrypted)",
                opts.users
            ),
        ),
        (
            "token sample",
            format!("{tokens_sampled} users, spread evenly over all users"),
        ),
        ("seeding", format!("{seed_seconds:.1} s")),
        (
            "rounds",
            format!("{} (each scenario's row is its median round)", opts.repeat),
        ),
    ];
    params.extend(bench.parameters());
    let generated = report::now_utc();

    let mut md = report::header(
        "Benchmark report",
        "cargo xtask bench",
        &generated,
        &machine,
        &params,
    );
    md.push('\n');
    md.push_str(&report::table(&rows));
    md.push('\n');
    md.push_str(&report::ratio_table(&ratios));
    md.push_str(&format!(
        "\nnon-2xx or socket errors under load (target 0): {non_2xx}\n\
         service peak RSS (target < 150 MiB): {} MiB\n\
         start-up, exec to /health/ready 200 (target < 300 ms): median {:.0} ms, \
         slowest {:.0} ms of {STARTUPS}\n",
        opt(peak_rss, 2),
        startup.median,
        startup.max,
    ));
    let results = Results {
        scenarios: rows.iter().map(Row::json).collect(),
        ratios: ratios.iter().map(Ratio::json).collect(),
        non_2xx_total: non_2xx,
        service_peak_rss_mib: report::round(peak_rss, 1),
        startup_ms: startup,
    };
    let json = report::Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "report", &md, &json)
}

/// One round: every scenario once. The scenarios of each ratio run next to each other, so that
/// drift of the machine (a shared VM) distorts the ratios as little as possible. No service
/// runs during P2: its change-feed listener would process the notifications of pgbench's writes.
fn run_round(
    bench: &Bench,
    opts: &Options,
    sample: u64,
    tokens: &Path,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let cached = bench.start_service("cached", true)?;
    bench.preflight(&cached, tokens)?;
    rows.push(bench.http_scenario(&cached, None, ("A", "GET /health/live"), "live", None)?);
    bench.warm_preferences(&cached, tokens, sample)?;
    let b = ("B", "GET preferences (cached)");
    rows.push(bench.http_scenario(&cached, None, b, "prefs", Some(tokens))?);
    bench.warm(&cached, tokens, sample, "effective-warm")?;
    let g = ("G", "GET effective view of a device (cached)");
    rows.push(bench.http_scenario(&cached, None, g, "effective", Some(tokens))?);
    // B again with the quotas counted in a Redis-protocol store (one EVALSHA per request)
    // instead of in process; a service of its own, warmed the same way.
    let store = RedisServer::start()?;
    let shared = bench.start_service_with(
        "cached-redis",
        &[
            ("USER_SETTINGS_RATE_LIMIT_STORE", "redis".to_owned()),
            ("USER_SETTINGS_REDIS_URL", store.url().to_owned()),
        ],
    )?;
    bench.warm_preferences(&shared, tokens, sample)?;
    let br = ("BR", "GET preferences (cached), quotas in Redis");
    rows.push(bench.http_scenario(&shared, Some(store.pid()), br, "prefs", Some(tokens))?);
    shared.stop();
    drop(store);
    let d = ("D", "PUT setting (plain JSON)");
    rows.push(bench.http_scenario(&cached, None, d, "put", Some(tokens))?);
    cached.stop();
    let p2 = ("P2", "pgbench: the service's upsert transaction");
    rows.push(bench.pgbench_scenario(p2, "pg_upsert.sql", opts.users, sample)?);
    let p3 = ("P3", "pgbench: the upsert statement alone (autocommit)");
    rows.push(bench.pgbench_scenario(p3, "pg_upsert_single.sql", opts.users, sample)?);
    let writer = bench.start_service("cached-2", true)?;
    let e = ("E", "PUT setting (encrypted)");
    rows.push(bench.http_scenario(&writer, None, e, "put-secret", Some(tokens))?);
    writer.stop();

    let uncached = bench.start_service("uncached", false)?;
    let c = ("C", "GET one setting (cache off)");
    rows.push(bench.http_scenario(&uncached, None, c, "get", Some(tokens))?);
    // The idle service does not disturb pgbench's reads.
    let p1 = ("P1", "pgbench: the service's SELECT of one setting");
    rows.push(bench.pgbench_scenario(p1, "pg_get.sql", opts.users, sample)?);
    let f = ("F", "GET list of 20 settings (cache off)");
    rows.push(bench.http_scenario(&uncached, None, f, "list", Some(tokens))?);
    uncached.stop();

    let order = ["A", "B", "BR", "C", "D", "E", "F", "G", "P1", "P2", "P3"];
    rows.sort_by_key(|r| order.iter().position(|id| *id == r.id));
    Ok(rows)
}

/// Per scenario, the round with the median throughput (the lower middle for an even count).
fn median_rows(rounds: &[Vec<Row>]) -> Vec<Row> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter_map(|row| {
            let mut runs: Vec<&Row> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|r| r.id == row.id))
                .collect();
            runs.sort_by(|a, b| a.m.per_second.total_cmp(&b.m.per_second));
            runs.get((runs.len() - 1) / 2).map(|r| (*r).clone())
        })
        .collect()
}

/// The target ratios of the median rows, with their range over the rounds.
fn ratios(rows: &[Row], rounds: &[Vec<Row>]) -> Vec<Ratio> {
    [
        ("B/A (cached read vs HTTP ceiling)", "B", "A", Some(0.7)),
        ("BR/B (quotas in Redis vs in process)", "BR", "B", Some(0.6)),
        (
            "G/B (effective view vs cached preferences)",
            "G",
            "B",
            Some(0.8),
        ),
        (
            "C/P1 (uncached read vs database SELECT)",
            "C",
            "P1",
            Some(0.55),
        ),
        ("D/P3 (write vs the bare upsert)", "D", "P3", Some(0.65)),
        (
            "D/P2 (write vs its transaction in pgbench)",
            "D",
            "P2",
            None,
        ),
        ("E/D (encrypted vs plain write)", "E", "D", Some(0.9)),
        ("F/C (list of 20 vs one setting)", "F", "C", Some(0.75)),
    ]
    .into_iter()
    .map(|(name, a, b, target)| {
        let per_round: Vec<f64> = rounds
            .iter()
            .filter_map(|round| report::ratio(round, a, b))
            .collect();
        let range = (per_round.len() > 1).then(|| {
            per_round
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
        });
        Ratio {
            name,
            value: report::ratio(rows, a, b),
            target,
            range,
        }
    })
    .collect()
}
