//! `cargo xtask bench`: the service side by side with the limits of the machine it runs on
//! (method and latest results in docs/BENCHMARKS.md).
//!
//! Builds the release binary, seeds a database (its own throw-away cluster unless
//! `DATABASE_URL` is set), starts the service with production-like configuration and drives it
//! with wrk, scenario after scenario at the same concurrency; then runs pgbench with the
//! service's own SQL. Writes `target/bench/report.{md,json}`. `cargo xtask bench scale` checks
//! that latency stays flat as the data grows; `cargo xtask bench abuse` what one user's flood of
//! maximum-size bulk writes does to the service's memory and to everyone else's reads.

mod abuse;
mod database;
mod jwt;
mod load;
mod procstat;
mod report;
mod scale;
mod service;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use database::{Database, PgbenchOptions};
use load::{Measurement, WrkRun};
use procstat::Sample;
use report::{Ratio, Row};
use service::Service;

use crate::redis_server::RedisServer;
use crate::{dev_secrets, process, workspace};

pub const USAGE: &str = "\
usage: cargo xtask bench [--users N] [--duration S] [--connections C] [--tokens T] [--repeat R]
       cargo xtask bench scale [--small N] [--large N] [--duration S] [--connections C] [--tokens T]
       cargo xtask bench abuse [--users N] [--duration S] [--readers C] [--abusers A] [--tokens T]";

/// Settings seeded per user (19 plain JSON + 1 encrypted); the scripts under xtask/bench agree.
pub const SETTINGS_PER_USER: u64 = 20;

/// Lifetime of the minted tokens: longer than any run.
const TOKEN_TTL_SECONDS: u64 = 6 * 3600;

/// Per-user rate limits "out of the way" (the defaults are 1000 reads / 100 writes per hour).
const NO_RATE_LIMIT: &str = "1000000000";

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("scale") => return scale::run(&args[1..]),
        Some("abuse") => return abuse::run(&args[1..]),
        _ => {}
    }
    let mut opts = Options {
        users: 100_000,
        seconds: 10,
        connections: 32,
        tokens: 10_000,
        repeat: 1,
    };
    let mut flags = Flags::new(args);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--users" => opts.users = flags.number(&flag)?,
            "--duration" => opts.seconds = flags.seconds(&flag)?,
            "--connections" => {
                opts.connections = usize::try_from(flags.number(&flag)?).unwrap_or(1)
            }
            "--tokens" => opts.tokens = flags.number(&flag)?,
            "--repeat" => opts.repeat = flags.number(&flag)?,
            _ => return Err(format!("unknown option `{flag}`\n{USAGE}")),
        }
    }
    opts.check()?;
    main_benchmark(&opts)
}

/// The knobs common to both commands.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub users: u64,
    pub seconds: u64,
    pub connections: usize,
    /// Users the load generators rotate over (a sample spread over all users).
    pub tokens: u64,
    /// Rounds of all scenarios; the report shows each scenario's median round.
    pub repeat: u64,
}

impl Options {
    fn check(&mut self) -> Result<(), String> {
        if self.users == 0
            || self.seconds == 0
            || self.connections == 0
            || self.tokens == 0
            || self.repeat == 0
        {
            return Err(format!("every option must be at least 1\n{USAGE}"));
        }
        self.tokens = self.tokens.min(self.users);
        Ok(())
    }
}

/// `--flag value` / `--flag=value` parsing.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    pending: Option<String>,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Self {
            args: args.iter(),
            pending: None,
        }
    }

    pub fn next_flag(&mut self) -> Result<Option<String>, String> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if !arg.starts_with("--") {
            return Err(format!("unexpected argument `{arg}`\n{USAGE}"));
        }
        Ok(Some(match arg.split_once('=') {
            Some((flag, value)) => {
                self.pending = Some(value.to_owned());
                flag.to_owned()
            }
            None => arg.clone(),
        }))
    }

    fn value(&mut self, flag: &str) -> Result<String, String> {
        self.pending
            .take()
            .or_else(|| self.args.next().cloned())
            .ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))
    }

    /// A count: digits, optionally with `_` separators or a `k`/`m` suffix (`100k`, `1m`).
    pub fn number(&mut self, flag: &str) -> Result<u64, String> {
        let value = self.value(flag)?;
        let text = value.replace('_', "").to_ascii_lowercase();
        let (digits, factor) = match text.strip_suffix('k') {
            Some(d) => (d.to_owned(), 1_000),
            None => match text.strip_suffix('m') {
                Some(d) => (d.to_owned(), 1_000_000),
                None => (text.clone(), 1),
            },
        };
        digits
            .parse::<u64>()
            .map(|n| n * factor)
            .map_err(|_| format!("`{flag} {value}`: not a number"))
    }

    /// Seconds: `10`, `10s` or `2m`.
    pub fn seconds(&mut self, flag: &str) -> Result<u64, String> {
        let value = self.value(flag)?;
        let (digits, factor) = if let Some(d) = value.strip_suffix('m') {
            (d, 60)
        } else {
            (value.strip_suffix('s').unwrap_or(&value), 1)
        };
        digits
            .parse::<u64>()
            .map(|n| n * factor)
            .map_err(|_| format!("`{flag} {value}`: not a duration such as 10s or 2m"))
    }
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
        let root = workspace::root()?;
        let binary = root.join("target").join("release").join("user-settings");
        let out = root.join("target").join("bench");
        fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let secrets = dev_secrets::load_or_create()?;
        let kid = secrets
            .encryption_key
            .split_once(':')
            .map(|(kid, _)| kid.to_owned())
            .ok_or("the dev encryption key has no `kid:` prefix")?;
        let db = Database::open()?;
        let bench = Self {
            binary,
            wrk,
            db,
            out,
            jwt_secret: secrets.jwt_secret,
            encryption_key: secrets.encryption_key,
            kid,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            connections,
            seconds,
        };
        let mut migrate = Command::new(&bench.binary);
        migrate
            .arg("migrate")
            .env("DATABASE_URL", bench.db.url())
            .env("USER_SETTINGS_ENCRYPTION_KEY", &bench.encryption_key)
            .env("USER_SETTINGS_JWT_SECRET", &bench.jwt_secret)
            .env("RUST_LOG", "warn");
        process::output(&mut migrate)?;
        Ok(bench)
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
        let mut env = vec![
            ("DATABASE_URL", self.db.url().to_owned()),
            ("USER_SETTINGS_ENCRYPTION_KEY", self.encryption_key.clone()),
            ("USER_SETTINGS_JWT_SECRET", self.jwt_secret.clone()),
            ("USER_SETTINGS_RATE_LIMIT_READS", NO_RATE_LIMIT.to_owned()),
            ("USER_SETTINGS_RATE_LIMIT_WRITES", NO_RATE_LIMIT.to_owned()),
            ("USER_SETTINGS_WORKERS", self.cores.to_string()),
            ("USER_SETTINGS_LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        Service::start(
            &self.binary,
            &env,
            &self.out.join(format!("service-{name}.log")),
        )
    }

    /// Tokens for `count` users spread evenly over users 1..=`users` (user 1 + i*users/count,
    /// the same sample as the pgbench scripts), one per line in `target/bench/<file>`.
    pub fn mint_tokens(&self, users: u64, count: u64, file: &str) -> Result<PathBuf, String> {
        let ids = self.db.query(&format!(
            "SELECT md5('bench-user-' || (1 + (i * {users}::bigint) / {count}))::uuid \
             FROM generate_series(0, {count} - 1) AS i"
        ))?;
        self.write_tokens(ids.lines(), file)
    }

    /// Tokens for the given user ids, one per line in `target/bench/<file>`.
    pub fn write_tokens<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
        file: &str,
    ) -> Result<PathBuf, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("the clock is before 1970: {e}"))?
            .as_secs();
        let mut text = String::new();
        for id in ids.map(str::trim).filter(|id| !id.is_empty()) {
            text.push_str(&jwt::mint(
                self.jwt_secret.as_bytes(),
                id,
                now,
                TOKEN_TTL_SECONDS,
            ));
            text.push('\n');
        }
        let path = self.out.join(file);
        report::write(&path, &text)?;
        Ok(path)
    }

    /// Checks that the service accepts the minted tokens and serves what was seeded.
    pub fn preflight(&self, svc: &Service, tokens: &Path) -> Result<(), String> {
        let text =
            fs::read_to_string(tokens).map_err(|e| format!("reading {}: {e}", tokens.display()))?;
        let token = text.lines().next().ok_or("no tokens were minted")?;
        for path in [
            "/api/v1/users/me/preferences",
            "/api/v1/users/me/settings/ui.bench.s01",
            "/api/v1/users/me/settings",
        ] {
            let (status, body) = service::http(svc.addr(), "GET", path, Some(token), None)?;
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

    /// Runs a wrk scenario: an untimed warm-up, then the measurement with CPU and peak RSS.
    pub fn http_scenario(
        &self,
        svc: &Service,
        id: &str,
        name: &str,
        mode: &str,
        tokens: Option<&Path>,
    ) -> Result<Row, String> {
        eprintln!("\n== {id}: {name}");
        let url = svc.url();
        let warmup = self.seconds.clamp(1, 2);
        self.wrk(&url, mode, tokens, warmup).run()?;
        let row = self.measure(Some(svc), id, name, || {
            self.wrk(&url, mode, tokens, self.seconds).run()
        })?;
        print_row(&row);
        Ok(row)
    }

    /// [`Bench::http_scenario`] of a service whose quotas are counted in the store `store`
    /// (a pid), whose CPU is measured too.
    pub fn http_scenario_with_store(
        &self,
        svc: &Service,
        store: u32,
        id: &str,
        name: &str,
        mode: &str,
        tokens: Option<&Path>,
    ) -> Result<Row, String> {
        eprintln!("\n== {id}: {name}");
        let url = svc.url();
        let warmup = self.seconds.clamp(1, 2);
        self.wrk(&url, mode, tokens, warmup).run()?;
        let row = self.measure_with_store(Some(svc), Some(store), id, name, || {
            self.wrk(&url, mode, tokens, self.seconds).run()
        })?;
        print_row(&row);
        Ok(row)
    }

    /// Fills the preferences cache: every token's user once (at least), walking the tokens.
    pub fn warm_preferences(&self, svc: &Service, tokens: &Path, count: u64) -> Result<(), String> {
        eprintln!("\n== warming the preferences cache ({count} users)");
        let url = svc.url();
        let start = Instant::now();
        let mut seconds = 2;
        let mut done = 0;
        while done < count && start.elapsed().as_secs() < 120 {
            done += self
                .wrk(&url, "prefs-warm", Some(tokens), seconds)
                .run()?
                .requests;
            seconds *= 2;
        }
        Ok(())
    }

    /// Runs a pgbench script at the HTTP scenarios' concurrency.
    pub fn pgbench_scenario(
        &self,
        id: &str,
        name: &str,
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
        let row = self.measure(None, id, name, || {
            let (out, cpu) = self.db.pgbench(script, &vars, &opts, &self.out, &prefix)?;
            let mut m = load::parse_pgbench(&out, &self.out, &prefix)?;
            m.generator_cpu = cpu;
            Ok(m)
        })?;
        print_row(&row);
        Ok(row)
    }

    fn measure(
        &self,
        svc: Option<&Service>,
        id: &str,
        name: &str,
        run: impl FnOnce() -> Result<Measurement, String>,
    ) -> Result<Row, String> {
        self.measure_with_store(svc, None, id, name, run)
    }

    /// As [`Bench::measure`], also counting the CPU of the rate-limit store `store` (a pid).
    fn measure_with_store(
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
        let store_after = store.and_then(procstat::process_cpu);
        let (service_cores, db_cores, machine_cores) = before.cores_until(&after);
        let store_cores = store_before
            .zip(store_after)
            .map(|(a, b)| (b - a).max(0.0) / before.seconds_until(&after));
        let generator_cores = m
            .generator_cpu
            .map(|cpu| cpu / before.seconds_until(&after));
        let other_cores = machine_cores.map(|machine| {
            machine
                - service_cores.unwrap_or(0.0)
                - db_cores.unwrap_or(0.0)
                - generator_cores.unwrap_or(0.0)
                - store_cores.unwrap_or(0.0)
        });
        Ok(Row {
            id: id.to_owned(),
            name: name.to_owned(),
            m,
            service_cores,
            db_cores,
            generator_cores,
            other_cores,
            machine_cores,
            peak_rss_mib: pid.and_then(procstat::peak_rss_mib),
            store_cores,
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
        fmt_opt(row.service_cores),
        fmt_opt(row.db_cores),
        fmt_opt(row.generator_cores),
        fmt_opt(row.other_cores),
        fmt_opt(row.machine_cores),
        fmt_opt(row.peak_rss_mib),
    );
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

/// The current UTC time, for the reports.
pub fn now_utc() -> String {
    process::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main_benchmark(opts: &Options) -> Result<ExitCode, String> {
    let bench = Bench::prepare(opts.connections, opts.seconds)?;
    let seed_seconds = bench.seed(1, opts.users)?;
    bench.db().settle()?;
    let machine = report::machine();
    let tokens = bench.mint_tokens(opts.users, opts.tokens, "tokens.txt")?;

    let mut rounds = Vec::new();
    for round in 1..=opts.repeat {
        if opts.repeat > 1 {
            eprintln!("\n=== round {round} of {}", opts.repeat);
        }
        rounds.push(run_round(&bench, opts, &tokens)?);
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
            format!("{} users, spread evenly over all users", opts.tokens),
        ),
        ("seeding", format!("{seed_seconds:.1} s")),
        (
            "rounds",
            format!("{} (each scenario's row is its median round)", opts.repeat),
        ),
    ];
    params.extend(bench.parameters());
    let generated = now_utc();

    let mut md =
        format!("# Benchmark report\n\nGenerated by `cargo xtask bench` on {generated}.\n\n");
    for (k, v) in machine.iter().chain(params.iter()) {
        md.push_str(&format!("- {k}: {v}\n"));
    }
    md.push('\n');
    md.push_str(&report::table(&rows));
    md.push('\n');
    md.push_str(&report::ratio_table(&ratios));
    md.push_str(&format!(
        "\nnon-2xx or socket errors under load (target 0): {non_2xx}\n\
         service peak RSS (target < 150 MiB): {} MiB\n",
        fmt_opt(peak_rss)
    ));

    let json = format!(
        "{{\n  \"generated_at\": {},\n  \"machine\": {{{}}},\n  \"parameters\": {{{}}},\n  \
         \"scenarios\": [\n    {}\n  ],\n  \"ratios\": [\n    {}\n  ],\n  \"non_2xx_total\": {non_2xx},\n  \
         \"service_peak_rss_mib\": {}\n}}\n",
        report::json_str(&generated),
        kv_json(&machine),
        kv_json(&params),
        rows.iter()
            .map(report::row_json)
            .collect::<Vec<_>>()
            .join(",\n    "),
        ratios
            .iter()
            .map(report::ratio_json)
            .collect::<Vec<_>>()
            .join(",\n    "),
        peak_rss.map_or("null".to_owned(), |v| format!("{v:.1}")),
    );
    let md_path = bench.out_dir().join("report.md");
    let json_path = bench.out_dir().join("report.json");
    report::write(&md_path, &md)?;
    report::write(&json_path, &json)?;
    println!("\n{md}");
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(ExitCode::SUCCESS)
}

/// One round: every scenario once. The scenarios of each ratio run next to each other, so that
/// drift of the machine (a shared VM) distorts the ratios as little as possible. No service
/// runs during P2: its change-feed listener would process the notifications of pgbench's writes.
fn run_round(bench: &Bench, opts: &Options, tokens: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let cached = bench.start_service("cached", true)?;
    bench.preflight(&cached, tokens)?;
    rows.push(bench.http_scenario(&cached, "A", "GET /health/live", "live", None)?);
    bench.warm_preferences(&cached, tokens, opts.tokens)?;
    rows.push(bench.http_scenario(
        &cached,
        "B",
        "GET preferences (cached)",
        "prefs",
        Some(tokens),
    )?);
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
    bench.warm_preferences(&shared, tokens, opts.tokens)?;
    rows.push(bench.http_scenario_with_store(
        &shared,
        store.pid(),
        "BR",
        "GET preferences (cached), quotas in Redis",
        "prefs",
        Some(tokens),
    )?);
    shared.stop();
    drop(store);
    rows.push(bench.http_scenario(
        &cached,
        "D",
        "PUT setting (plain JSON)",
        "put",
        Some(tokens),
    )?);
    cached.stop();
    rows.push(bench.pgbench_scenario(
        "P2",
        "pgbench: the service's upsert transaction",
        "pg_upsert.sql",
        opts.users,
        opts.tokens,
    )?);
    let writer = bench.start_service("cached-2", true)?;
    rows.push(bench.http_scenario(
        &writer,
        "E",
        "PUT setting (encrypted)",
        "put-secret",
        Some(tokens),
    )?);
    writer.stop();

    let uncached = bench.start_service("uncached", false)?;
    rows.push(bench.http_scenario(
        &uncached,
        "C",
        "GET one setting (cache off)",
        "get",
        Some(tokens),
    )?);
    // The idle service does not disturb pgbench's reads.
    rows.push(bench.pgbench_scenario(
        "P1",
        "pgbench: the service's SELECT of one setting",
        "pg_get.sql",
        opts.users,
        opts.tokens,
    )?);
    rows.push(bench.http_scenario(
        &uncached,
        "F",
        "GET list of 20 settings (cache off)",
        "list",
        Some(tokens),
    )?);
    uncached.stop();

    let order = ["A", "B", "BR", "C", "D", "E", "F", "P1", "P2"];
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
            "C/P1 (uncached read vs database SELECT)",
            "C",
            "P1",
            Some(0.5),
        ),
        ("D/P2 (write vs database upsert)", "D", "P2", Some(0.7)),
        ("E/D (encrypted vs plain write)", "E", "D", Some(0.9)),
        ("F/C (list of 20 vs one setting)", "F", "C", None),
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

pub fn kv_json(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", report::json_str(k), report::json_str(v)))
        .collect::<Vec<_>>()
        .join(", ")
}
