//! `cargo xtask`: the workspace's task runner (dev database, tests, CI, benchmarks).
//!
//! Adding a command: a variant of `Cli` (its doc comment is its help) and one arm in `main`.

use std::process::ExitCode;

use clap::{Args, Parser};
use xtask::{ci, db, fuzz_api, process, run, test, workspace};

#[derive(Parser)]
#[command(bin_name = "cargo xtask", arg_required_else_help = true)]
enum Cli {
    /// The persistent dev PostgreSQL cluster.
    ///
    /// In target/pg/dev (as root, when the `postgres` user cannot reach the checkout:
    /// /tmp/user-settings-pg-<hash>/dev); `url` prints
    /// postgres://postgres@127.0.0.1:<port>/postgres.
    Db { action: db::Action },
    /// Every test of the workspace; ARGS go to the test runner.
    ///
    /// nextest if installed, plus doc tests, against DATABASE_URL, or else an ephemeral
    /// cluster test-<pid> beside the dev one.
    #[command(disable_help_flag = true)]
    Test(Passed),
    /// cargo fmt --check, clippy -D warnings, `test`, then `fuzz-api --seconds 60`.
    Ci,
    /// Serve the API on 127.0.0.1:8080; ARGS go to `user-settings serve`.
    ///
    /// Against DATABASE_URL or the dev cluster, with development secrets kept in
    /// target/dev-secrets.env.
    #[command(disable_help_flag = true)]
    Run(Passed),
    /// Print a token for the dev service; ARGS go to `user-settings token`.
    ///
    /// [--sub UUID | --subjects-file FILE] [--role admin|service] [--ttl 1h]; without --sub
    /// or --subjects-file, for the dev user.
    #[command(disable_help_flag = true)]
    Token(Passed),
    /// The benchmark: bench [scale|abuse] [options] (`cargo xtask bench --help`).
    ///
    /// The `bench` package; needs wrk; method and results in docs/BENCHMARKS.md.
    #[command(disable_help_flag = true)]
    Bench(Passed),
    /// schemathesis against the service's OpenAPI document, as user, admin and service.
    ///
    /// Installed from PyPI into target/schemathesis; output in target/fuzz-api/.
    FuzzApi {
        /// Time per token.
        #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..))]
        seconds: u64,
    },
}

/// Arguments handed on as they are.
#[derive(Args)]
struct Passed {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::Db { action } => db::run(action),
        Cli::Test(Passed { args }) => test::run(&args),
        Cli::Ci => ci::run(),
        Cli::Run(Passed { args }) => run::run(&args),
        Cli::Token(Passed { args }) => run::token(&args),
        Cli::Bench(Passed { args }) => bench(&args),
        Cli::FuzzApi { seconds } => fuzz_api::run(seconds),
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::FAILURE
    })
}

/// A package of its own, so that xtask stays small; release, like the service it runs.
fn bench(args: &[String]) -> Result<ExitCode, String> {
    let mut bench = workspace::cargo()?;
    bench.args(["run", "--quiet", "--release", "--package", "bench", "--"]);
    Ok(process::exit_code(process::status(bench.args(args))?))
}
