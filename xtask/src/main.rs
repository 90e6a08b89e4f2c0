//! `cargo xtask`: the workspace's task runner (dev database, tests, CI, benchmarks), std and
//! serde_json only.
//!
//! Adding a command: a module with `pub fn run(args: &[String]) -> Result<ExitCode, String>`,
//! one arm in `dispatch`, one line in `HELP`.

use xtask::{ci, db, fuzz_api, process, run, test, workspace};

use std::env;
use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <command> [args]

commands:
  db start|stop|status|reset|url
               the persistent dev PostgreSQL cluster in target/pg/dev (as root, when the
               `postgres` user cannot reach the checkout: /tmp/user-settings-pg-<hash>/dev)
               (`url` prints postgres://postgres@127.0.0.1:<port>/postgres)
  test [args]  every test of the workspace (nextest if installed, plus doc tests) against
               DATABASE_URL, or else an ephemeral cluster test-<pid> beside the dev one;
               args go to the test runner
  ci           cargo fmt --check, clippy -D warnings, then `test`
  run [args]   serve the API on 127.0.0.1:8080 against DATABASE_URL or the dev cluster,
               with development secrets kept in target/dev-secrets.env
  token [args] print a token for the dev service (default user, or --sub UUID;
               --role admin|service; --ttl 1h)
  bench [--users N] [--duration S] [--connections C] [--tokens T] [--repeat R]
               release build against its own PostgreSQL (or DATABASE_URL): wrk scenarios
               A-F and pgbench P1/P2 with ratios; writes target/bench/report.{md,json}
               (defaults: 100000 users, 10s, 32 connections, 10000 tokens, 1 round;
               needs wrk; docs/BENCHMARKS.md)
  bench scale [--small N] [--large N] [--duration S] [--connections C] [--tokens T]
               p99 of one-setting and list reads at N vs N' users (default 10000 vs
               1000000; tokens default 100000), and lists of 10/100/1000 settings;
               writes target/bench/scale.{md,json}
  fuzz-api [--seconds N]
               schemathesis (installed from PyPI into target/schemathesis) against the
               service's OpenAPI document with a user, an admin and a service token, N s
               each (default 150); output in target/fuzz-api/
  bench abuse [--users N] [--duration S] [--readers C] [--abusers A] [--tokens T]
               readers' p50/p99 alone, then while one user keeps A (default 64) largest
               bulk writes in flight; the service's peak RSS; default 20s per phase,
               16 connections per reader kind; writes target/bench/abuse.{md,json}
  help         this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode, String> {
    let Some((command, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    };
    match command.as_str() {
        "db" => db::run(rest),
        "test" => test::run(rest),
        "ci" => ci::run(rest),
        "run" => run::run(rest),
        "token" => run::token(rest),
        // A package of its own, so that xtask stays small; release, like the service it runs.
        "bench" => {
            let mut bench = workspace::cargo()?;
            bench.args(["run", "--quiet", "--release", "--package", "bench", "--"]);
            Ok(process::exit_code(process::status(bench.args(rest))?))
        }
        "fuzz-api" => fuzz_api::run(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n\n{HELP}")),
    }
}
