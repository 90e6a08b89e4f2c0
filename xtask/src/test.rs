//! `cargo xtask test`: every test of the workspace, against `DATABASE_URL` or an ephemeral cluster,
//! a throw-away `redis-server` unless `USER_SETTINGS_TEST_REDIS_URL` names one, and a
//! `chromedriver` for the console's browser tests unless `USER_SETTINGS_TEST_WEBDRIVER_URL`
//! names a WebDriver server.

use std::env;
use std::process::{Command, ExitCode};

use crate::browser::{self, WebDriver};
use crate::pg_install::PgInstall;
use crate::redis_server::{self, RedisServer};
use crate::{cluster, process, workspace};

/// Tells tests that start a private cluster where the PostgreSQL server binaries are.
const BINDIR_VAR: &str = "USER_SETTINGS_TEST_PG_BINDIR";

/// Runs the workspace's tests; `runner_args` go to the test runner (nextest or `cargo test`).
pub fn run(runner_args: &[String]) -> Result<ExitCode, String> {
    let install = PgInstall::find();
    // Kept alive until the tests are done; dropping it stops and deletes the cluster.
    let (_cluster, database_url) = cluster::database(&install, "test", "")?;
    // Kept alive until the tests are done, like the cluster.
    let (_redis, redis_url) = match env::var(redis_server::URL_VAR) {
        Ok(url) if !url.is_empty() => {
            eprintln!("using {} from the environment", redis_server::URL_VAR);
            (None, url)
        }
        _ => {
            let server = RedisServer::start()?;
            let url = server.url().to_owned();
            (Some(server), url)
        }
    };
    // Kept alive like the others: the support console's tests drive Chromium through it.
    let (_webdriver, webdriver_url, chromium) = match env::var(browser::WEBDRIVER_VAR) {
        Ok(url) if !url.is_empty() => {
            eprintln!("using {} from the environment", browser::WEBDRIVER_VAR);
            (None, url, env::var(browser::CHROMIUM_VAR).ok())
        }
        _ => {
            let driver = WebDriver::start()?;
            let url = driver.url().to_owned();
            let chromium = driver.browser().display().to_string();
            (Some(driver), url, Some(chromium))
        }
    };
    let bindir = install.ok().map(|install| install.bindir().to_path_buf());
    let with_env = |mut cmd: Command| {
        cmd.env("DATABASE_URL", &database_url);
        cmd.env(redis_server::URL_VAR, &redis_url);
        cmd.env(browser::WEBDRIVER_VAR, &webdriver_url);
        if let Some(chromium) = &chromium {
            cmd.env(browser::CHROMIUM_VAR, chromium);
        }
        if let Some(bindir) = &bindir {
            cmd.env(BINDIR_VAR, bindir);
        }
        cmd
    };

    let mut tests = with_env(workspace::cargo()?);
    if process::succeeds(workspace::cargo()?.args(["nextest", "--version"])) {
        tests.args(["nextest", "run"]);
    } else {
        eprintln!("cargo-nextest not found; falling back to `cargo test`");
        tests.arg("test");
    }
    tests
        .args(["--workspace", "--all-targets", "--no-fail-fast"])
        .args(runner_args);
    let tests = process::status(&mut tests)?;
    // nextest does not run doc tests.
    let doc_tests =
        process::status(with_env(workspace::cargo()?).args(["test", "--workspace", "--doc"]))?;

    Ok(match (tests.success(), doc_tests.success()) {
        (true, true) => ExitCode::SUCCESS,
        (false, _) => process::exit_code(tests),
        (true, false) => process::exit_code(doc_tests),
    })
}
