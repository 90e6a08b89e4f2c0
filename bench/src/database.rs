//! The benchmark's database: `DATABASE_URL`, or else a throw-away cluster `bench-<pid>` in the
//! checkout's cluster root (stopped and deleted on drop, also on failure); seeding with psql
//! and the SQL under `bench/scripts/`; pgbench.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use xtask::cluster::{self, EphemeralCluster};
use xtask::pg_install::PgInstall;
use xtask::{process, workspace};

/// The PostgreSQL schema the service's migrations create its tables in.
const SERVICE_SCHEMA: &str = "shared";

/// Server settings of the bench cluster, on top of `cluster.rs`'s ephemeral ones (fsync, full
/// page writes and synchronous commit off: the same for the service and for pgbench), and a
/// log of statements of 100 ms and more, checkpoints and autovacuum runs, kept after the run.
const BENCH_SERVER_SETTINGS: &str = "\n# Added by `cargo xtask bench`.\n\
     shared_buffers = '1GB'\n\
     max_wal_size = '8GB'\n\
     checkpoint_timeout = '30min'\n\
     log_min_duration_statement = '100ms'\n\
     log_checkpoints = on\n\
     log_autovacuum_min_duration = '100ms'\n";

pub struct Database {
    url: String,
    cluster: Option<EphemeralCluster>,
    /// Where the cluster's log is copied when it is deleted (slow statements, checkpoints and
    /// autovacuum runs: what the database was doing when a scenario stalled).
    keep_log: PathBuf,
    /// Directory of psql and pgbench (the server's bindir), or `None` for PATH.
    bindir: Option<PathBuf>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = fs::copy(cluster.cluster().log_file(), &self.keep_log);
        }
    }
}

impl Database {
    /// `DATABASE_URL` when set, else a fresh cluster whose log is kept in `out` as
    /// `postgresql.log`.
    pub fn open(out: &Path) -> Result<Self, String> {
        let install = PgInstall::find();
        let (cluster, url) = cluster::database(&install, "bench", BENCH_SERVER_SETTINGS)?;
        if cluster.is_none() {
            eprintln!("(PostgreSQL CPU not measured)");
        }
        Ok(Self {
            url,
            cluster,
            keep_log: out.join("postgresql.log"),
            bindir: install.ok().map(|i| i.bindir().to_path_buf()),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The postmaster's pid, when the cluster is ours (for its CPU time).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let cluster = self.cluster.as_ref()?;
        let text = fs::read_to_string(cluster.cluster().data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// A client program (psql, pgbench) of the PostgreSQL installation, run as the current
    /// user: clients, unlike the server, may run as root.
    fn client(&self, program: &str) -> Command {
        match &self.bindir {
            Some(dir) if dir.join(program).is_file() => Command::new(dir.join(program)),
            _ => Command::new(program),
        }
    }

    /// psql on the benchmark's database, stopping at the first error, with the service's
    /// PostgreSQL schema first on the search path (so SQL may name its tables unqualified).
    pub fn psql(&self) -> Command {
        let mut cmd = self.client("psql");
        cmd.env("PGOPTIONS", format!("-c search_path={SERVICE_SCHEMA}"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.url]);
        cmd
    }

    /// Runs one SQL command and returns its unaligned, tuples-only output.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        process::output(self.psql().args(["-A", "-t", "-c", sql]))
    }

    /// Runs an SQL file of `bench/scripts` with psql variables.
    pub fn run_file(&self, file: &str, vars: &[(&str, String)]) -> Result<(), String> {
        let mut cmd = self.psql();
        for (name, value) in vars {
            cmd.arg("-v").arg(format!("{name}={value}"));
        }
        cmd.arg("-f").arg(bench_dir()?.join(file));
        process::output(&mut cmd).map(drop)
    }

    /// Seeds users `first..=last` in batches, printing progress; returns the seconds taken.
    pub fn seed_users(&self, first: u64, last: u64, kid: &str) -> Result<f64, String> {
        const BATCH: u64 = 50_000;
        let start = Instant::now();
        let mut from = first;
        while from <= last {
            let to = (from + BATCH - 1).min(last);
            self.run_file(
                "seed.sql",
                &[
                    ("first", from.to_string()),
                    ("last", to.to_string()),
                    ("kid", kid.to_owned()),
                ],
            )?;
            let elapsed = start.elapsed().as_secs_f64();
            let rate = (to - first + 1) as f64 / elapsed.max(1e-9);
            eprintln!(
                "  seeded users {first}..={to} ({:.0} users/s, {elapsed:.0} s so far)",
                rate
            );
            from = to + 1;
        }
        Ok(start.elapsed().as_secs_f64())
    }

    /// VACUUM ANALYZE (hint bits, visibility map, statistics) and a checkpoint, so that neither
    /// happens in the middle of a measurement.
    pub fn settle(&self) -> Result<(), String> {
        let start = Instant::now();
        self.query("VACUUM ANALYZE")?;
        self.query("CHECKPOINT")?;
        eprintln!(
            "VACUUM ANALYZE + CHECKPOINT: {:.1} s",
            start.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// pgbench with a custom script of `bench/scripts` and `-D` variables; returns its stdout
    /// and the CPU seconds pgbench used.
    /// Per-transaction latencies are logged to `<log_prefix>.*` files in `log_dir`.
    pub fn pgbench(
        &self,
        script: &str,
        vars: &[(&str, String)],
        opts: &PgbenchOptions,
        log_dir: &Path,
        log_prefix: &str,
    ) -> Result<(String, Option<f64>), String> {
        let mut cmd = self.client("pgbench");
        cmd.current_dir(log_dir)
            .args(["-n", "-M", "prepared"])
            .args(["-T", &opts.seconds.to_string()])
            .args(["-c", &opts.clients.to_string()])
            .args(["-j", &opts.threads.to_string()])
            .arg("-l")
            .arg(format!("--log-prefix={log_prefix}"))
            .arg("-f")
            .arg(bench_dir()?.join(script));
        for (name, value) in vars {
            cmd.arg("-D").arg(format!("{name}={value}"));
        }
        cmd.arg(&self.url);
        eprintln!("$ {}", process::display(&cmd));
        crate::load::output_with_cpu(&mut cmd)
    }
}

pub struct PgbenchOptions {
    pub seconds: u64,
    pub clients: usize,
    pub threads: usize,
}

/// `bench/scripts`: the SQL and Lua files of the benchmark.
pub fn bench_dir() -> Result<PathBuf, String> {
    Ok(workspace::root()?.join("bench").join("scripts"))
}
